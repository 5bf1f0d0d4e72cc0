# The two commands of the README. Both build .venv/ from requirements.lock when it is
# missing or older than pyproject.toml / requirements.lock, then run.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench

$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dispatch demo

# OpenSSH's sshd and vsftpd are the servers vendors run; the channel tests use them when
# present (installed here when we are root and apt works) and asyncssh/pyftpdlib otherwise.
test: $(STAMP)
	@-[ -x /usr/sbin/sshd ] || [ "$$(id -u)" != 0 ] || \
	  (apt-get install -y -q openssh-server vsftpd >/dev/null 2>&1 || true)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy dispatch

bench: $(STAMP)
	$(VENV)/bin/python bench/api.py
