"""What the tests share: helpers, builders and fakes, never tests. Test modules import from
here and never from one another. Modules that need the local control plane (``harness``) take
it as an argument; nothing here starts one."""
