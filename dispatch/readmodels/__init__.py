"""Read models for the faces: answers that combine several phases, each in one module.

- `cockpit`: the dispatcher's queue (tickets, SLA clocks, the actions allowed now);
- `job_packet`: what a technician needs on site, with closeout's evidence gate.

They sit above the phases and below the faces (the toolset, the pages): they may read any
phase's selectors, and nothing below them imports them. They write nothing.
"""
