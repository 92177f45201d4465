"""Message bus port and its adapters: in-process (embedded mode) and Redis Streams (distributed mode).

``RedisStreamsBus`` lives in :mod:`kernel.bus.redis` and is imported from there, so that embedded mode
never needs the redis package.
"""

from kernel.bus.consumer import Consumer, Handler, RunningConsumer
from kernel.bus.memory import InProcessBus
from kernel.bus.port import Bus, Delivery

__all__ = ["Bus", "Consumer", "Delivery", "Handler", "InProcessBus", "RunningConsumer"]
