# splitstream build, test and demo entry points. See README.md.
GO        ?= go
BIN       := bin
ORT_LIB   := $(CURDIR)/third_party/ort/libonnxruntime.so
PYTHON    ?= /usr/bin/python3
# gen2brain/webp would otherwise dlopen a system libwebp through purego,
# which makes even CGO_ENABLED=0 binaries dynamically linked; with this tag
# it always uses its embedded WebAssembly build and the binary stays static.
STATIC_TAGS := nodynamic
# Packages whose tests also run on linux/arm64 under qemu-user.
ARM64_PKGS ?= ./entropy/... ./models/... ./wire/... ./codec/... ./tasks/... ./edge/learn/...

export SPLITSTREAM_ORT_LIB ?= $(ORT_LIB)
# The recorded cellular traces (mahimahi format) beside the checkout, for the
# tests that replay them; they skip with a message where there are none.
export SPLITSTREAM_TRACES ?= $(wildcard $(CURDIR)/../shared/traces)

.PHONY: all build cross image ort test test-go test-py test-arm64 demo models gan-mc condensa clean

all: build

build:
	$(GO) build -o $(BIN)/splitstream ./cmd/splitstream

## cross: static builds for linux/amd64 and linux/arm64 (pure-Go engine only).
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -tags $(STATIC_TAGS) -o $(BIN)/splitstream-linux-amd64 ./cmd/splitstream
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags $(STATIC_TAGS) -o $(BIN)/splitstream-linux-arm64 ./cmd/splitstream

## image: the cloud's OCI image, from scratch: the static binary (as `make cross`
## builds it), a numeric non-root user, no shell. IMAGE_BUNDLES are baked in under
## /bundles; set it empty to mount bundles there instead. See docs/DEPLOY.md.
## PODMAN carries deploy/containers.conf, which these build machines need (runc,
## cgroupfs, no ulimits); on a normal host use `make image PODMAN=podman`.
IMAGE         ?= localhost/splitstream:latest
IMAGE_BUNDLES ?= $(patsubst %/,%,$(filter-out %/testset/,$(wildcard models/zoo/*/)))
PODMAN        ?= CONTAINERS_CONF=$(CURDIR)/deploy/containers.conf podman
image:
	rm -rf $(BIN)/image && mkdir -p $(BIN)/image/bundles
	CGO_ENABLED=0 $(GO) build -tags $(STATIC_TAGS) -trimpath -o $(BIN)/image/splitstream ./cmd/splitstream
	for b in $(IMAGE_BUNDLES); do cp -R "$$b" $(BIN)/image/bundles/ || exit 1; done
	$(PODMAN) build --quiet -f deploy/Containerfile -t $(IMAGE) $(BIN)/image
	@$(PODMAN) image inspect --format '{{.RepoTags}} {{.Size}} bytes, user {{.Config.User}}, bundles: $(notdir $(IMAGE_BUNDLES))' $(IMAGE)

## ort: fetch ONNX Runtime's shared library into third_party/ort (ignored by git).
ort:
	scripts/fetch-ort.sh

## test: everything CI runs: Go tests (both engines), Python tests, arm64 tests.
test: test-go test-py test-arm64

# Link-emulation timing tests run after the others, one package at a time, so
# that the CPU-heavy model tests do not starve them.
TIMING_PKGS = ./bench/link/... ./bench/netns
test-go:
	$(GO) vet ./...
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e /bench/link -e /bench/netns)
	$(GO) test -count=1 -p 1 $(TIMING_PKGS)

test-py:
	@if [ ! -d train ]; then \
		echo "test-py: no train/ folder, no Python tests"; \
	elif $(PYTHON) -c 'import torch' 2>/dev/null; then \
		cd train && $(PYTHON) -m pytest -q; \
	else \
		echo "test-py: SKIPPED: python3-torch is not installed (apt-get install python3-torch python3-pytest)"; \
	fi

test-arm64:
	@set -e; qemu=$$(scripts/qemu-arm64.sh); mkdir -p $(BIN)/arm64; rm -f $(BIN)/arm64/*.test; \
	for p in $$($(GO) list $(ARM64_PKGS)); do \
		name=$$(echo $$p | tr / _); \
		CGO_ENABLED=0 GOARCH=arm64 $(GO) test -tags $(STATIC_TAGS) -c -o $(BIN)/arm64/$$name.test $$p; \
		[ -f $(BIN)/arm64/$$name.test ] || continue; \
		dir=$$($(GO) list -f '{{.Dir}}' $$p); \
		echo "arm64 (qemu): $$p"; \
		(cd $$dir && $$qemu $(CURDIR)/$(BIN)/arm64/$$name.test -test.count=1) || exit 1; \
	done

## demo: cloud and edge in one process on loopback with the shipped bundle.
DEMO_FLAGS ?=
demo: build
	$(BIN)/splitstream demo $(DEMO_FLAGS)

## models: installs Debian's packages (as .ci/run does), trains the teacher and the
## Entropic Students from fixed seeds on the CPU and exports models/zoo/ (see README.md
## for the time it takes). Stages resume from train/runs/; rm -rf train/runs for a fresh run.
models: build
	@pkgs="python3-torch python3-torchvision python3-onnx python3-pytest python3-numpy python3-pil python3-skimage dataset-fashion-mnist"; \
	missing=$$(for p in $$pkgs; do dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
		echo "models: installing $$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	OMP_WAIT_POLICY=PASSIVE $(PYTHON) -m train.pipeline --out models/zoo --runs train/runs --cache train/cache

## gan-mc: GAN-MC's Compression Scores of real, GAN, real+GAN and mixup scene sets
## against the shipped teacher, from fixed seeds (docs/GAN-MC.md; about 46 min on 2
## busy cores). Resumes from train/runs/ganmc (the GAN, the scenes, the teacher's logits).
gan-mc:
	OMP_WAIT_POLICY=PASSIVE nice -n 19 $(PYTHON) -m train.gan_mc --runs train/runs/ganmc --cache train/cache \
		--n 4000 --seeds 0 --garments-png docs/gan-mc-garments.png --scenes-png docs/gan-mc-scenes.png

## condensa: Condensa-style compression of es-b0.11's encoder, 10 samples of Bayesian
## optimisation and 10 of random search (docs/CONDENSA.md; about 25 min on 2 busy cores).
## Resumes from train/runs-condensa/es-b0.11 (its traces are replayed).
condensa: build
	OMP_WAIT_POLICY=PASSIVE nice -n 19 $(PYTHON) -m train.condensa --bundle models/zoo/fmnist-es-b0.11 \
		--objective latency --max-top1-drop 0.01 --samples 10 --search bo,random --out train/runs-condensa/es-b0.11

clean:
	rm -rf $(BIN)
