"""Names shared by the graph description, the export CLI and the nodes (pure, no imports)."""


def store_name_for_env(env_id: str) -> str:
    """`mbrl_ros/Reacher2D-v0` -> `reacher2d`: the folder under models/ holding that task's bundles."""
    base = env_id.split("/")[-1]
    base = base.rsplit("-v", 1)[0]
    return base.lower()
