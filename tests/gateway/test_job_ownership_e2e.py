"""A job, its report and its file belong to who started it: another user cannot see, cancel or download
them (404, as for a job that does not exist); a ProjectManager or TI sees every job."""

from __future__ import annotations

import time

import pytest

from tests.support.servers import start_embedded

CSV = b"telefono,nombre\n8812-0001,Ana\n8812-0002,Beto\nno-es-un-telefono,Nadie\n"


def test_another_users_job_report_and_file_are_out_of_reach(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_embedded(tmp_path_factory.mktemp("jobs"))
    try:
        owner = server.create_user("lucia", "TeamLead", "norte")
        other = server.create_user("laura", "TeamLead", "norte")
        agent = server.create_user("ana", "Agent", "norte")
        manager = server.create_user("pedro", "ProjectManager")
        with server.client(owner) as http:
            started = http.post("/import", files={"file": ("lista.csv", CSV)})
            assert started.status_code == 202, started.text
            job_id = started.json()["id"]
            deadline = time.monotonic() + 30
            while http.get(f"/jobs/{job_id}").json()["state"] not in ("finished", "failed"):
                assert time.monotonic() < deadline, "the import never ended"
                time.sleep(0.1)
            assert http.get(f"/jobs/{job_id}/report").status_code == 200
        answers = {}
        for name, key in (("laura", other), ("ana", agent)):
            with server.client(key) as http:
                answers[name] = [
                    http.get(f"/jobs/{job_id}").status_code,
                    http.get(f"/jobs/{job_id}/report").status_code,
                    http.get(f"/jobs/{job_id}/download").status_code,
                    http.delete(f"/jobs/{job_id}").status_code,
                ]
        with server.client(manager) as http:
            seen_by_manager = http.get(f"/jobs/{job_id}").status_code
    finally:
        server.process.stop()

    assert answers == {"laura": [404, 404, 404, 404], "ana": [404, 404, 404, 404]}
    assert seen_by_manager == 200
