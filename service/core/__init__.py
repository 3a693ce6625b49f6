"""The domain, pure: the public schemas, our errors, the ContainerRecreateRequest (how we build
it, name it, hash it and read it back as a restart), the rules a create must pass, the Event
bodies and who a caller is.

No I/O here and no web framework: functions of their arguments (a clock or a random suffix at
most), so every rule is tested with plain dicts. May import: the standard library and pydantic.
Every other layer imports this one; it imports none of them.
"""
