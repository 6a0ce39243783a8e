# mss-login — see README.md. `make run` and `make test` work on a fresh machine of this kind
# (Debian with Go); everything they need is installed by the scripts in hack/.

SHELL := /usr/bin/env bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/mss-login/mss-login/internal/version.Version=$(VERSION) \
	-X github.com/mss-login/mss-login/internal/version.Commit=$(COMMIT)
GO_TEST_FLAGS ?= -count=1 -timeout 40m

.PHONY: all build run test lint bench tools control-plane test-servers-up test-servers-down clean manifests generate \
	helm-crds docker-build docker-push build-installer deploy undeploy

all: build

## build: the one binary, bin/mss-login
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/mss-login ./cmd/mss-login

## run: `mss-login dev` — builds bin/mss-login and the control plane with progress lines, then runs
##   the samples, manager and auth server on them; data in ./data
run:
	hack/run.sh

## test: everything — lint, then every test against real PostgreSQL, MariaDB, S3 and kube-apiserver
test: lint
	hack/with-test-env.sh go test $(GO_TEST_FLAGS) ./...

## lint: gofmt check and go vet
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$bad" ]; then echo "gofmt needed on:"; echo "$$bad"; exit 1; fi
	go vet ./...

## bench: the benchmarks, with ratios against their in-run baselines
bench:
	hack/with-test-env.sh hack/bench.sh

## tools: controller-gen, helm and versitygw into bin/
tools:
	hack/tools.sh

## control-plane: kube-apiserver, etcd and kubectl for envtest into bin/k8s/
control-plane:
	hack/control-plane.sh

## test-servers-up / test-servers-down: the throwaway servers for running tests by hand
##   make test-servers-up && source .tmp/servers/env && go test ./internal/store/
test-servers-up: tools
	hack/packages.sh
	hack/test-servers.sh start .tmp/servers

test-servers-down:
	hack/test-servers.sh stop .tmp/servers

clean:
	rm -rf bin/mss-login .tmp

## docker-build: the image every chart pod runs (needs docker or a compatible CLI; the chart's
##   default is ghcr.io/mss-login/mss-login:<appVersion>). docker-push pushes it.
IMG ?= ghcr.io/mss-login/mss-login:$(VERSION)
CONTAINER_TOOL ?= docker
docker-build:
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMG) .

docker-push:
	$(CONTAINER_TOOL) push $(IMG)

## build-installer: dist/install.yaml — CRDs, RBAC and the manager from config/default, for
##   `kubectl apply -f` without Helm (kustomize built into kubectl v1.37).
build-installer: control-plane
	mkdir -p dist
	$$(hack/control-plane.sh)/kubectl kustomize config/default \
		| sed 's|image: ghcr.io/mss-login/mss-login:latest|image: $(IMG)|' >dist/install.yaml
	@echo "wrote dist/install.yaml ($(IMG))"

## deploy / undeploy: config/default into the cluster of the current kubeconfig
deploy: control-plane
	$$(hack/control-plane.sh)/kubectl apply -k config/default

undeploy: control-plane
	$$(hack/control-plane.sh)/kubectl delete --ignore-not-found -k config/default

## manifests: CRDs (config/crd/bases) and RBAC (config/rbac/role.yaml) from the kubebuilder markers
##   TestGeneratedFilesUpToDate (api/v1alpha1) runs the same paths and fails when the checked-in output is stale.
CONTROLLER_GEN_PATHS := paths=./api/... paths=./controllers/... paths=./internal/controller/...
manifests:
	hack/tools.sh controller-gen
	bin/controller-gen crd rbac:roleName=mss-login-manager $(CONTROLLER_GEN_PATHS) \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	go run ./hack/helmgen

## helm-crds: the chart's CRDs and manager ClusterRole (charts/mss-login/templates/{crds,rbac})
##   from config/; never edit those by hand. TestChartGeneratedTemplatesUpToDate (test/chart) fails when stale.
helm-crds:
	go run ./hack/helmgen

## generate: deepcopy functions for api/ (zz_generated.deepcopy.go)
generate:
	hack/tools.sh controller-gen
	bin/controller-gen object paths=./api/...
