"""One module per subcommand; each exposes register(subparsers).

:data:`SUMMARIES` is the command list the CLI shows without importing every
command's module (and its dependencies): ``reconciler validate`` loads no SSH
or rollout code.
"""

#: command -> one-line help, in the order ``reconciler --help`` lists them
SUMMARIES = {
    "init": "adopt running hosts: a new config repo that describes them as they are",
    "validate": "check a config repo against the schemas and rules",
    "plan": "show what a rollout would change, per build set, stage and host",
    "status": "one row per host: desired and actual build, in sync, reachable",
    "apply": "roll the config repo's commit out: source, build, test, production",
    "history": "show the ledger: one entry per outcome, newest first",
    "run": "run the reconciler continuously (poll, watch, apply, heal drift)",
    "release": "lift a build's quarantine: it may be tried again (a ledger commit naming who)",
    "sim": "the simulated FreeBSD fleet (for tests and rehearsals)",
    "demo": "simulated fleet + example repo + a full rollout + the ledger shown",
}
