"""User-facing text in Spanish (default) and English; one table, looked up by key."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("es", "en")

# key: (español, English). Placeholders use str.format names.
_TEXT: Mapping[str, tuple[str, str]] = {
    "app.title": ("CallManager", "CallManager"),
    "conn.connected": ("conectado", "connected"),
    "conn.reconnecting": ("reconectando…", "reconnecting…"),
    "conn.disconnected": ("desconectado", "disconnected"),
    "conn.connecting": ("conectando…", "connecting…"),
    "status.count_exact": ("{count} contactos", "{count} contacts"),
    "status.count_exact.one": ("{count} contacto", "{count} contact"),
    "status.count_loaded": ("{loaded} cargados, hay más", "{loaded} loaded, more available"),
    "status.count_loaded.one": ("{loaded} cargado, hay más", "{loaded} loaded, more available"),
    "status.loading": ("cargando…", "loading…"),
    "status.user": ("{username} ({role})", "{username} ({role})"),
    "status.user_unknown": ("usuario desconocido", "unknown user"),
    "status.resynced": (
        "Se recargó la lista: hubo cambios mientras estaba desconectado.",
        "List reloaded: there were changes while disconnected.",
    ),
    "role.Agent": ("Agente", "Agent"),
    "role.TeamLead": ("Líder de equipo", "Team lead"),
    "role.ProjectManager": ("Gerente de proyecto", "Project manager"),
    "role.TI": ("TI", "IT"),
    "col.name": ("Nombre", "Name"),
    "col.phone": ("Teléfono", "Phone"),
    "col.status": ("Estado", "Status"),
    "col.note": ("Nota", "Note"),
    "col.lock": ("Bloqueado por", "Locked by"),
    "filter.all": ("(todos)", "(all)"),
    "filter.status": ("Estado", "Status"),
    "filter.list": ("Lista", "List"),
    "filter.operator": ("Operador", "Operator"),
    "filter.search": ("Buscar nombre o teléfono (Ctrl+F)", "Search name or phone (Ctrl+F)"),
    "filter.search_label": ("Buscar", "Search"),
    "filter.list_hint": ("lista + Enter", "list + Enter"),
    "tool.import": ("📥 Importar", "📥 Import"),
    "tool.export": ("📤 Exportar", "📤 Export"),
    "tool.generate": ("🎲 Generar", "🎲 Generate"),
    "tool.metrics": ("📊 Métricas", "📊 Metrics"),
    "tool.reload": ("⟳ Recargar", "⟳ Reload"),
    "panel.empty": ("Seleccione un contacto", "Select a contact"),
    "panel.tab_edit": ("Contacto", "Contact"),
    "panel.tab_history": ("Historial", "History"),
    "panel.name": ("Nombre", "Name"),
    "panel.status": ("Estado", "Status"),
    "panel.note": ("Nota", "Note"),
    "panel.phone": ("Teléfono", "Phone"),
    "panel.email": ("Correo", "E-mail"),
    "panel.operator": ("Operador", "Operator"),
    "panel.list": ("Lista", "List"),
    "panel.no_email": ("sin correo", "no e-mail"),
    "panel.status_keys": (
        "Cambie el estado con Alt+1 … Alt+9, o con ↑ ↓ sobre Estado.",
        "Change the status with Alt+1 … Alt+9, or ↑ ↓ on Status.",
    ),
    "panel.note_keys": (
        "Tab pasa al siguiente campo; Ctrl+Tab escribe una tabulación.",
        "Tab moves to the next field; Ctrl+Tab types a tab.",
    ),
    "panel.save": ("💾 Guardar (Ctrl+S)", "💾 Save (Ctrl+S)"),
    "panel.call": ("📞 Llamar (F5)", "📞 Call (F5)"),
    "panel.lock": ("🔒 Bloquear", "🔒 Lock"),
    "panel.release": ("🔓 Liberar", "🔓 Release"),
    "panel.force_release": ("🔓 Forzar liberación", "🔓 Force release"),
    "panel.delete": ("🗑 Eliminar", "🗑 Delete"),
    "panel.next": ("Siguiente (Ctrl+N)", "Next (Ctrl+N)"),
    "panel.saved": ("Cambios guardados.", "Changes saved."),
    "panel.nothing_to_save": ("No hay cambios que guardar.", "Nothing to save."),
    "panel.stale": (
        "Otro usuario modificó este contacto; se cargó la versión actual. Revise y guarde de nuevo.",
        "Someone else changed this contact; the current version was loaded. Review and save again.",
    ),
    "panel.changed_by": ("{user} cambió este contacto.", "{user} changed this contact."),
    "panel.changed_by_dirty": (
        "{user} cambió este contacto mientras usted editaba; al guardar se avisará si hay conflicto.",
        "{user} changed this contact while you were editing; saving will report any conflict.",
    ),
    "panel.deleted": ("Contacto eliminado.", "Contact deleted."),
    "panel.draft_restored": (
        "Se recuperaron cambios sin guardar escritos a las {when}. Guárdelos o descártelos.",
        "Unsaved changes typed at {when} were recovered. Save or discard them.",
    ),
    "panel.conflict": (
        "Otra persona cambió este contacto mientras usted lo editaba. Sus cambios no se perdieron: elija "
        "qué conservar en cada campo y guarde.",
        "Someone else changed this contact while you were editing. Your changes are not lost: choose what "
        "to keep in each field and save.",
    ),
    "panel.conflict_choose": (
        "Antes de guardar, elija qué conservar en cada campo marcado.",
        "Before saving, choose what to keep in each marked field.",
    ),
    "conflict.title": ("Cambios de otra persona", "Someone else's changes"),
    "conflict.theirs": ("{who} ({when}): {value}", "{who} ({when}): {value}"),
    "conflict.mine": ("Usted: {value}", "You: {value}"),
    "conflict.keep": ("Conservar el mío", "Keep mine"),
    "conflict.take": ("Tomar el suyo", "Take theirs"),
    "conflict.merge": ("Combinar", "Merge"),
    "conflict.empty": ("(vacío)", "(empty)"),
    "unsaved.title": ("Cambios sin guardar", "Unsaved changes"),
    "unsaved.question": (
        "Hay cambios sin guardar en «{name}». ¿Qué desea hacer con ellos?",
        "There are unsaved changes to “{name}”. What do you want to do with them?",
    ),
    "unsaved.save": ("Guardar", "Save"),
    "unsaved.discard": ("Descartar", "Discard"),
    "unsaved.cancel": ("Cancelar", "Cancel"),
    "panel.deleted_by": ("{user} eliminó este contacto.", "{user} deleted this contact."),
    "panel.confirm_delete": (
        "¿Eliminar el contacto {name} ({phone})? Esta acción queda registrada.",
        "Delete contact {name} ({phone})? This action is recorded.",
    ),
    "lock.free": ("Libre", "Free"),
    "lock.mine": ("Bloqueado por usted — quedan {remaining}", "Locked by you — {remaining} left"),
    "lock.other": (
        "Bloqueado por {owner} hasta las {until} (quedan {remaining})",
        "Locked by {owner} until {until} ({remaining} left)",
    ),
    "lock.denied": (
        "No se pudo bloquear: lo tiene {owner} hasta las {until}.",
        "Could not lock: {owner} holds it until {until}.",
    ),
    "lock.locked": ("Contacto bloqueado por {minutes} minutos.", "Contact locked for {minutes} minutes."),
    "lock.released": ("Bloqueo liberado.", "Lock released."),
    "lock.expired": ("Su bloqueo venció.", "Your lock expired."),
    "lock.expiring": (
        "Su bloqueo vence a las {until}. Pulse «Extender» si aún trabaja en este contacto.",
        "Your lock ends at {until}. Press “Extend” if you are still working on this contact.",
    ),
    "lock.extend": ("⏱ Extender", "⏱ Extend"),
    "lock.force_released": (
        "{user} liberó su bloqueo de este contacto. Lo escrito sigue aquí; vuelva a bloquearlo para seguir.",
        "{user} released your lock on this contact. What you typed is still here; lock it again to go on.",
    ),
    "call.sent": (
        "Llamada enviada a su puesto «{desk}» ({number}).",
        "Call sent to your desk «{desk}» ({number}).",
    ),
    "call.no_desk": (
        "Su puesto no tiene el marcador conectado. Inicie «callmanager-dialer» en este equipo (vea --check).",
        "Your desk has no dialer connected. Start «callmanager-dialer» on this computer (see --check).",
    ),
    "call.locked": (
        "No se puede llamar: el contacto lo tiene {owner} hasta las {until}.",
        "Cannot call: {owner} holds this contact until {until}.",
    ),
    "call.locked_save": (
        "No se pudo guardar el cierre: el contacto lo tiene {owner} hasta las {until}. "
        "Lo escrito se conserva.",
        "The wrap-up was not saved: {owner} holds this contact until {until}. What you typed is kept.",
    ),
    "call.already": ("Ya hay una llamada en curso.", "A call is already in progress."),
    "call.finish_wrapup": (
        "Termine el cierre de la llamada anterior antes de llamar de nuevo.",
        "Finish the previous call's wrap-up before calling again.",
    ),
    "call.hangup_failed": ("No se pudo colgar: {message}", "Could not hang up: {message}"),
    "call.desk_lost": (
        "Su puesto se desconectó durante la llamada; el servidor la cerrará si no vuelve.",
        "Your desk disconnected during the call; the server will close it if the desk does not return.",
    ),
    "call.button_no_desk": ("📞 Llamar (F5) · sin marcador", "📞 Call (F5) · no dialer"),
    "call.button_busy": ("📞 Puesto ocupado", "📞 Desk busy"),
    "call.button_in_call": ("📞 En llamada", "📞 In call"),
    "call.button_wrapup": ("📞 Cierre pendiente", "📞 Wrap-up pending"),
    "call.hangup": ("📵 Colgar (F8)", "📵 Hang up (F8)"),
    "call.phase.requesting": ("Marcando…", "Dialling…"),
    "call.phase.dialling": ("Marcando…", "Dialling…"),
    "call.phase.ringing": ("Sonando…", "Ringing…"),
    "call.phase.in_call": ("En llamada", "In call"),
    "call.phase.hanging_up": ("Colgando…", "Hanging up…"),
    "desk.none": (
        "Sin marcador: inicie «callmanager-dialer» en este equipo (vea --check).",
        "No dialer: start «callmanager-dialer» on this computer (see --check).",
    ),
    "desk.ready": ("Puesto «{desk}»: listo", "Desk «{desk}»: ready"),
    "desk.busy": ("Puesto «{desk}»: ocupado ({state})", "Desk «{desk}»: busy ({state})"),
    "desk.softphone_missing": (
        "Puesto «{desk}»: no encuentra el teléfono de software (vea callmanager-dialer --check).",
        "Desk «{desk}»: the softphone is missing (see callmanager-dialer --check).",
    ),
    "desk_state.ready": ("Listo", "Ready"),
    "desk_state.dialling": ("Marcando", "Dialling"),
    "desk_state.ringing": ("Sonando", "Ringing"),
    "desk_state.in_call": ("En llamada", "In call"),
    "desk_state.softphone_missing": ("Sin teléfono de software", "No softphone"),
    "desk_state.offline": ("Desconectado", "Offline"),
    "wrapup.title": ("Cierre de la llamada con {name}", "Wrap-up of the call with {name}"),
    "wrapup.title_talk": (
        "Cierre de la llamada con {name} ({talk} en llamada)",
        "Wrap-up of the call with {name} ({talk} talking)",
    ),
    "wrapup.outcome": ("Resultado", "Outcome"),
    "wrapup.choose_outcome": (
        "Su puesto no informa si contestaron: elija el resultado; se envía al colgar.",
        "Your desk cannot tell whether the call was answered: choose the outcome; it is sent on hang-up.",
    ),
    "wrapup.reported_outcome": ("Resultado informado por su puesto.", "Outcome reported by your desk."),
    "wrapup.save": ("💾 Guardar cierre", "💾 Save wrap-up"),
    "wrapup.hangup_and_save": ("📵 Colgar y guardar", "📵 Hang up and save"),
    "wrapup.saved": ("Cierre de la llamada guardado.", "Call wrap-up saved."),
    "wrapup.stale": (
        "Otro usuario cambió este contacto; se leyó la versión actual y se conservó lo que escribió. "
        "Revise y guarde de nuevo.",
        "Someone else changed this contact; the current version was read and what you typed was kept. "
        "Review and save again.",
    ),
    "tool.desks": ("🎧 Puestos", "🎧 Desks"),
    "desks.title": ("Puestos", "Desks"),
    "desks.agent": ("Agente", "Agent"),
    "desks.desk": ("Puesto", "Desk"),
    "desks.state": ("Estado", "State"),
    "desks.contact": ("Contacto", "Contact"),
    "desks.since": ("Desde", "Since"),
    "desks.count": ("{count} puestos conectados", "{count} desks connected"),
    "desks.count.one": ("{count} puesto conectado", "{count} desk connected"),
    "desks.none": ("No hay puestos conectados.", "No desks connected."),
    "desks.failed": ("No se pudieron leer los puestos: {message}", "Could not read the desks: {message}"),
    "desks.calls": ("Llamadas", "Calls"),
    "call.sent_no_desk": (
        "La solicitud se registró, pero ningún agente de puesto está conectado: la llamada no se hizo.",
        "The request was recorded, but no desk agent is connected: the call was not made.",
    ),
    "history.when": ("Cuándo", "When"),
    "history.who": ("Quién", "Who"),
    "history.what": ("Qué", "What"),
    "history.old": ("Antes", "Before"),
    "history.new": ("Después", "After"),
    "history.empty": ("Sin historial.", "No history."),
    "field.phone": ("Teléfono", "Phone"),
    "field.name": ("Nombre", "Name"),
    "field.status": ("Estado", "Status"),
    "field.note": ("Nota", "Note"),
    "field.email": ("Correo", "E-mail"),
    "field.list": ("Lista", "List"),
    "field.operator": ("Operador", "Operator"),
    "field.extra": ("Otros datos", "Other data"),
    "field.locked_by": ("Bloqueo", "Lock"),
    "field.deleted": ("Eliminado", "Deleted"),
    "field.locked_until": ("Bloqueo hasta", "Locked until"),
    "field.call": ("Llamada", "Call"),
    "value.true": ("sí", "yes"),
    "value.requested": ("solicitada", "requested"),
    "value.started": ("iniciada", "started"),
    "value.answered": ("contestada", "answered"),
    "value.no_answer": ("no contestó", "no answer"),
    "value.busy": ("ocupado", "busy"),
    "value.failed": ("falló", "failed"),
    "value.cancelled": ("cancelada", "cancelled"),
    "error.network": (
        "No se pudo conectar con el servidor {url}: {detail}",
        "Could not reach the server {url}: {detail}",
    ),
    "error.unauthorized": (
        "La llave de API no es válida o fue revocada.",
        "The API key is invalid or revoked.",
    ),
    "error.forbidden": ("Su rol no permite esta acción.", "Your role does not allow this action."),
    "error.rate_limited": (
        "Demasiadas solicitudes; espere {seconds} s.",
        "Too many requests; wait {seconds} s.",
    ),
    "error.unexpected": (
        "Respuesta inesperada del servidor ({status}).",
        "Unexpected server response ({status}).",
    ),
    "error.not_found": ("No existe.", "Not found."),
    "setup.title": ("Conexión al servidor", "Server connection"),
    "setup.url": ("URL del servidor", "Server URL"),
    "setup.key": ("Llave de API", "API key"),
    "setup.language": ("Idioma", "Language"),
    "setup.test": ("Probar y guardar", "Test and save"),
    "setup.cancel": ("Cancelar", "Cancel"),
    "setup.url_invalid": (
        "La URL debe empezar con http:// o https://",
        "The URL must start with http:// or https://",
    ),
    "setup.key_missing": ("Escriba la llave de API.", "Enter the API key."),
    "setup.testing": ("Probando conexión…", "Testing connection…"),
    "setup.ok": ("Conectado como {username} ({role}).", "Connected as {username} ({role})."),
    "setup.keyring_ok": (
        "La llave se guardó en el llavero del sistema.",
        "The key was saved in the OS keyring.",
    ),
    "setup.keyring_fallback": (
        "No hay llavero del sistema disponible ({reason}); la llave se guardó en {path} "
        "con permisos solo para su usuario.",
        "No OS keyring available ({reason}); the key was saved in {path}, readable only by your user.",
    ),
    "import.title": ("Importar contactos", "Import contacts"),
    "import.choose": ("Elegir archivo…", "Choose file…"),
    "import.idle": ("Elija un archivo .xlsx, .xls o .csv.", "Choose a .xlsx, .xls or .csv file."),
    "import.checking": ("Revisando {file} (sin guardar)…", "Checking {file} (dry run)…"),
    "import.preview": (
        "Revisión de {file}: {total} filas — {inserted} nuevas, {updated} ya existentes, "
        "{merged} repetidas en el archivo, {rejected} rechazadas. Todavía no se guardó nada.",
        "Dry run of {file}: {total} rows — {inserted} new, {updated} already there, "
        "{merged} repeated in file, {rejected} rejected. Nothing was saved yet.",
    ),
    "import.confirm": ("Confirmar importación", "Confirm import"),
    "import.running": ("Importando {file}: {done} de {total}", "Importing {file}: {done} of {total}"),
    "import.done": (
        "Importación terminada: {inserted} nuevas, {updated} actualizadas, {unchanged} sin cambios, "
        "{merged} repetidas, {rejected} rechazadas de {total}.",
        "Import finished: {inserted} new, {updated} updated, {unchanged} unchanged, "
        "{merged} repeated, {rejected} rejected of {total}.",
    ),
    "import.failed": ("La importación falló: {message}", "The import failed: {message}"),
    "import.cancelled": ("Importación cancelada.", "Import cancelled."),
    "import.save_report": ("Guardar reporte…", "Save report…"),
    "import.report_saved": ("Reporte guardado en {path}.", "Report saved to {path}."),
    "import.row": ("Fila", "Row"),
    "import.reason": ("Detalle", "Detail"),
    "import.phone": ("Teléfono", "Phone"),
    "import.outcome": ("Resultado", "Outcome"),
    "import.outcome.rejected": ("rechazada", "rejected"),
    "import.outcome.merged": ("combinada", "merged"),
    "import.outcome.locked": ("bloqueada, no se tocó", "locked, left alone"),
    "import.outcome.warning": ("aviso", "warning"),
    "import.merged_into": (
        "mismo teléfono que la fila {row}; se combinó con ella",
        "same phone as row {row}; merged into it",
    ),
    "export.title": ("Exportar contactos", "Export contacts"),
    "export.format": ("Formato", "Format"),
    "export.start": ("Exportar…", "Export…"),
    "export.running": ("Descargando… {received}", "Downloading… {received}"),
    "export.done": ("Exportación guardada en {path} ({size}).", "Export saved to {path} ({size})."),
    "export.failed": (
        "La exportación falló: {message}. No se guardó ningún archivo.",
        "The export failed: {message}. No file was saved.",
    ),
    "generate.title": ("Generar números de Costa Rica", "Generate Costa Rican numbers"),
    "generate.amount": ("Cantidad (1–1000)", "Amount (1–1000)"),
    "generate.method": ("Método", "Method"),
    "generate.save": ("Guardar como contactos", "Save as contacts"),
    "generate.shares": ("Reparto por operador", "Operator shares"),
    "generate.run": ("Generar", "Generate"),
    "generate.amount_invalid": (
        "La cantidad debe ser un número entre 1 y 1000.",
        "The amount must be a number between 1 and 1000.",
    ),
    "generate.running": ("Generando…", "Generating…"),
    "generate.done": (
        "{count} números generados; {saved} guardados como contactos.",
        "{count} numbers generated; {saved} saved as contacts.",
    ),
    "generate.done_unsaved": (
        "{count} números generados (no se guardaron).",
        "{count} numbers generated (not saved).",
    ),
    "generate.failed": ("La generación falló: {message}", "Generation failed: {message}"),
    "generate.save_as": ("Guardar resultado…", "Save result…"),
    "generate.number": ("Número", "Number"),
    "generate.formatted": ("Formato", "Formatted"),
    "generate.operator": ("Operador", "Operator"),
    "generate.saved_file": ("Resultado guardado en {path}.", "Result saved to {path}."),
    "method.stratified": ("Estratificado (recomendado)", "Stratified (recommended)"),
    "method.simple": ("Simple (tercios iguales)", "Simple (equal thirds)"),
    "method.random": ("Aleatorio (por pesos)", "Random (by weight)"),
    "metrics.title": ("Métricas", "Metrics"),
    "metrics.refresh": ("Actualizar", "Refresh"),
    "metrics.calls": ("Llamadas", "Calls"),
    "metrics.by_status": ("Contactos por estado", "Contacts by status"),
    "metrics.per_agent": ("Por agente", "Per agent"),
    "metrics.other": ("Otros datos", "Other figures"),
    "metrics.key": ("Dato", "Figure"),
    "metrics.value": ("Valor", "Value"),
    "metric.made": ("Realizadas", "Made"),
    "metric.successful": ("Exitosas", "Successful"),
    "metric.failed": ("Fallidas", "Failed"),
    "metric.success_rate": ("Tasa de éxito", "Success rate"),
    "metric.average_handling_seconds": ("Atención promedio (s)", "Average handling (s)"),
    "metric.talk_seconds": ("Tiempo en llamada (s)", "Talk time (s)"),
    "metric.agent": ("Agente", "Agent"),
    "metric.calls": ("Llamadas", "Calls"),
    "metric.total": ("Contactos en total", "Contacts in total"),
    "metric.locked": ("Contactos bloqueados ahora", "Contacts locked now"),
    "metric.http_requests": ("Solicitudes atendidas", "Requests answered"),
    "metric.http_rejected": ("Solicitudes rechazadas (4xx)", "Requests refused (4xx)"),
    "metric.http_errors": ("Errores del servidor (5xx)", "Server errors (5xx)"),
    "metric.http_mean_ms": ("Respuesta promedio (ms)", "Mean response (ms)"),
    "metric.sockets": ("Clientes en vivo conectados", "Live clients connected"),
    "metric.events_relayed": ("Cambios enviados en vivo", "Changes sent live"),
    "metrics.no_calls": (
        "Llamadas: el servidor aún no publica cifras de llamadas.",
        "Calls: the server does not publish call figures yet.",
    ),
    "metrics.failed": ("No se pudieron leer las métricas: {message}", "Could not read metrics: {message}"),
    "metrics.calls_own": ("Sus llamadas", "Your calls"),
    "metrics.calls_team": ("Llamadas del equipo {team}", "Calls of team {team}"),
    "metrics.calls_all": ("Llamadas de todos los equipos", "Calls of every team"),
    "metrics.per_team": ("Por equipo", "Per team"),
    "metrics.no_team": ("(sin equipo)", "(no team)"),
    "metrics.period": ("Periodo", "Period"),
    "period.today": ("Hoy", "Today"),
    "period.this_week": ("Esta semana", "This week"),
    "period.week": ("Últimos 7 días", "Last 7 days"),
    "period.month": ("Últimos 30 días", "Last 30 days"),
    "period.all": ("Todo", "All time"),
    "metric.team": ("Equipo", "Team"),
    "metric.agents": ("Agentes", "Agents"),
    "metric.cancelled": ("Canceladas", "Cancelled"),
    "metric.in_progress": ("En curso", "In progress"),
    "metric.average_handling": ("Atención promedio", "Average handling"),
    "metric.talk_time": ("Tiempo en llamada", "Talk time"),
    "file.saved": ("Guardado en {path}.", "Saved to {path}."),
    "file.failed": ("No se pudo guardar {path}: {message}", "Could not save {path}: {message}"),
    "common.yes": ("Sí", "Yes"),
    "common.someone": ("Otro usuario", "Another user"),
    "common.no": ("No", "No"),
    "common.close": ("Cerrar", "Close"),
    "common.cancel": ("Cancelar", "Cancel"),
    "common.confirm": ("Confirmar", "Confirm"),
    "common.minutes": ("{n} min", "{n} min"),
    "common.seconds": ("{n} s", "{n} s"),
}


class Translator:
    """Looks up user-facing text by key in one language; unknown keys show as the key itself."""

    def __init__(self, language: str = "es") -> None:
        self.language = language if language in LANGUAGES else "es"
        self._index = LANGUAGES.index(self.language)

    def __call__(self, key: str, **values: object) -> str:
        """The text for ``key`` in this language, with ``values`` filled in."""
        pair = _TEXT.get(key)
        if pair is None:
            return key
        text = pair[self._index]
        return text.format(**values) if values else text

    def plural(self, key: str, number: int, /, **values: object) -> str:
        """The text for ``key`` (``key.one`` when ``number`` is 1: "1 contacto", "2 contactos")."""
        singular = f"{key}.one"
        return self(singular if number == 1 and singular in _TEXT else key, **values)

    def has(self, key: str) -> bool:
        """Whether ``key`` has a translation."""
        return key in _TEXT


def keys() -> frozenset[str]:
    """Every key with a translation (for tests that check coverage)."""
    return frozenset(_TEXT)
