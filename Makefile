# `make demo` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_HOME := demo-home
DEMO_DATA := demo-data

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[train,test,postgres,milvus]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import facesearch.cli.main, faiss, torch, torchvision, psycopg, pymilvus"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The main job on the embedded defaults (SQLite, FAISS on CPU), on cartoon faces (a fresh
# clone has no photos): train an encoder (about five minutes on 2 cores), export it, enroll 20
# people it never saw, benchmark, query, remove someone; every answer is checked, and the last
# line says how many were right (scripts/demo.py says why it is built this way).
demo: $(STAMP)
	$(BIN)/python scripts/demo.py --data $(DEMO_DATA) --home $(DEMO_HOME)

clean:
	rm -rf $(DEMO_HOME) $(DEMO_DATA) build dist *.egg-info
