"""``python -m turret.demo``: see turret.demo.runner."""

from turret.demo.runner import main

if __name__ == "__main__":
    main(prog_name="python -m turret.demo")
