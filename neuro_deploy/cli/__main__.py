"""`python -m neuro_deploy.cli`, as scripts and tests start the command line."""

from neuro_deploy.cli import main

main()
