# `make demo` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_HOME := demo-home
DEMO_DATA := demo-data
FS     := FACESEARCH_HOME=$(DEMO_HOME) $(BIN)/facesearch

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import facesearch.cli.main, faiss, torch, torchvision"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The main job on the embedded defaults (SQLite, FAISS on CPU), on synthetic faces.
demo: $(STAMP)
	rm -rf $(DEMO_HOME) $(DEMO_DATA)
	$(BIN)/facesearch synth $(DEMO_DATA)/gallery --identities 30 --images 3
	$(BIN)/facesearch synth $(DEMO_DATA)/probes --identities 30 --images 1 --first-image 3
	$(FS) enroll $(DEMO_DATA)/gallery
	$(FS) enroll $(DEMO_DATA)/gallery
	$(FS) query $(DEMO_DATA)/gallery/person_0007/0001.jpg --top-k 3
	$(FS) query $(DEMO_DATA)/probes/person_0007/0003.jpg --top-k 3
	$(FS) remove person_0007
	$(FS) info

clean:
	rm -rf $(DEMO_HOME) $(DEMO_DATA) build dist *.egg-info
