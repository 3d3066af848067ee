"""Inside a node's network namespace (run by `ip netns exec`, which already gave this process a
mount namespace of its own): bind the container's volumes and image files at their paths, then
become the container's process with exactly its environment."""

import ast
import os
import subprocess
import sys

spec = ast.literal_eval(open(sys.argv[1]).read())
for source, target, read_only in spec["binds"]:
    subprocess.run(["mount", "--bind", source, target], check=True)
    if read_only:
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
os.chdir(spec["workdir"])
os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
