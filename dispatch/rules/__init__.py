"""Pure business rules: no session, no I/O, no clock (the caller passes ``now``).

Everything here takes plain data (``dispatch.rules.types``) and returns plain data:
field errors, or the effects a request has (field changes, transactions, dispatches).
"""
