"""Prefect plumbing: the process runtime flows use, the embedded runner of ``serve``, the
server-mode worker and its engine fork server, Prefect defaults. The only package that
imports ``flows/``."""
