"""controller_lifecycle_node: the controller as a managed (lifecycle) node.

The same controller as controller_node (mbrl_ros.nodes.controller_node.LifecycleControllerNode);
this module is its `python -m` / console-script entry point.
"""
from mbrl_ros.nodes.controller_node import lifecycle_main as main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
