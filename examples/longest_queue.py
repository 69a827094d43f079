"""A new signal controller in about thirty lines: hold a green while it serves the longest queue.

Run it beside the baselines:
    CITYBRAIN_CONTROLLER_MODULES=examples/longest_queue.py \\
        citybrain evaluate --scenario resco/cologne1 --controllers fixed,actuated,longest-queue --seeds 3
"""

from sim.controllers import Controller, register


@register
class LongestQueue(Controller):
    """Each second, extend a green by one second while a lane it alone serves holds a longer queue
    than any lane it stops, up to ``max_green_s``; otherwise the program runs on through its yellow.
    It never shortens a green, so the program's minimum greens and clearances stay as they are."""

    name = "longest-queue"

    def __init__(self, max_green_s: float = 40.0) -> None:
        self.max_green_s = max_green_s
        self.green_since: dict[str, float] = {}

    def start(self, sim) -> None:
        self.links = {tls: sim.trafficlight.getControlledLinks(tls) for tls in sim.trafficlight.getIDList()}

    def step(self, sim, time: float) -> None:
        for tls, links in self.links.items():
            state = sim.trafficlight.getRedYellowGreenState(tls)
            if "y" in state.lower() or not any(c in "Gg" for c in state):
                self.green_since.pop(tls, None)  # a clearance: the program's own business
                continue
            since = self.green_since.setdefault(tls, time)
            green_lanes, red_lanes = set(), set()
            for i, link in enumerate(links):
                (green_lanes if state[i] in "Gg" else red_lanes).update(lane for lane, _out, _via in link)
            queue = sim.lane.getLastStepHaltingNumber
            served = max((queue(lane) for lane in green_lanes - red_lanes), default=0)
            waiting = max((queue(lane) for lane in red_lanes - green_lanes), default=0)
            ending = sim.trafficlight.getNextSwitch(tls) - time <= 1.0  # never cut a green short
            if ending and served > waiting and time - since < self.max_green_s:
                sim.trafficlight.setPhaseDuration(tls, 1.0)
