"""Resolution: what a request means to read (layer, runs, times, members, levels, cell),
shared by every front (DESIGN.md §7). Protocol modules parse into these requests and encode
what comes back; they never decide what to read themselves.
"""
