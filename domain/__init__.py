"""The pure domain of Yaosu: reference codes, messages, aggregates, rules and supervision.

Nothing in this package performs I/O; it imports only the standard library and the
domain part of `eventsourcing`.
"""
