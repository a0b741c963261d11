"""Time: the request grammar of instants, intervals, lists and durations (`grammar`), the
stored instants' canonical form (`instants`) and the time axes of a layer's runs (`axis`)."""
