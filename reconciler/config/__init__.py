"""Desired state: load the config repo, check it, render the files hosts get."""
