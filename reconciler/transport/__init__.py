"""SSH transport: the only package that imports paramiko.

``command`` builds quoted command lines, ``ssh`` holds one connection per
host with the host key policy, ``pool`` caches connections for a fleet,
``failures`` puts connection errors into words, ``keyscan`` reads the key a
host offers (for ``reconciler init`` to have it confirmed).
"""
