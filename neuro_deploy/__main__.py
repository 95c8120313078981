"""`python -m neuro_deploy` runs the `neuro-deploy` command line."""

from neuro_deploy.cli import main

main()
