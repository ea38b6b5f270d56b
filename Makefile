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
	$(BIN)/pip install -q --disable-pip-version-check -e '.[train,test,postgres,milvus]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import facesearch.cli.main, faiss, torch, torchvision, psycopg, pymilvus"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The main job on the embedded defaults (SQLite, FAISS on CPU), on synthetic faces: train a
# small encoder (a few minutes on 2 CPU cores), enroll 20 people it never saw, benchmark on
# probes of them and of 10 strangers (tuning the threshold), query, remove someone.
demo: $(STAMP)
	rm -rf $(DEMO_HOME) $(DEMO_DATA)
	$(BIN)/facesearch synth $(DEMO_DATA)/train --identities 40 --images 8
	$(BIN)/facesearch synth $(DEMO_DATA)/unseen --identities 30 --images 4 --first-identity 1000 --pairs 10
	$(BIN)/facesearch synth $(DEMO_DATA)/gallery --identities 20 --images 3 --first-identity 2000
	$(BIN)/facesearch synth $(DEMO_DATA)/probes --identities 30 --images 1 --probes 20 --first-identity 2000 --first-image 3
	$(BIN)/facesearch train $(DEMO_DATA)/train --out $(DEMO_DATA)/encoder.pt --epochs 6 --arcface-epochs 3 \
		--batch-size 64 --val-pairs $(DEMO_DATA)/unseen/pairs.txt --val-images $(DEMO_DATA)/unseen/images
	$(FS) enroll $(DEMO_DATA)/gallery --model $(DEMO_DATA)/encoder.pt
	$(FS) enroll $(DEMO_DATA)/gallery
	$(FS) bench $(DEMO_DATA)/probes/unknown_dev --tune --report $(DEMO_DATA)/report
	$(FS) query $(DEMO_DATA)/probes/unknown_dev/000005.jpg --top-k 3
	$(FS) remove person_2005
	$(FS) query $(DEMO_DATA)/probes/unknown_dev/000005.jpg --top-k 3
	$(FS) info

clean:
	rm -rf $(DEMO_HOME) $(DEMO_DATA) build dist *.egg-info
