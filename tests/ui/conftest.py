def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long end-to-end test (its name ends in _slow)")
