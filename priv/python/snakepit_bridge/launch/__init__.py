"""The worker servers of an installed snakepit_bridge (``pip install``).

The host runs ``<package>/launch/grpc_server.py`` (or
``grpc_server_threaded.py``) when the configured interpreter has the package
installed. Run as scripts, they put only this directory on ``sys.path[0]``,
so ``import snakepit_bridge`` resolves to the installed package and none of
its modules shadows a top-level name.
"""
