pytest_plugins = ["shared.pytest_plugin"]
