"""What the tests share: the stack rendered under mocks, evaluators, fakes and server launchers."""
