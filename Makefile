# The two commands of a fresh machine: `make up` and `make test`.
PRESET ?= release
BIN := build/$(PRESET)/bin

.PHONY: deps build up test clean

deps:
	scripts/install-deps

build: deps
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET)

up: build
	$(BIN)/calcmesh up

test: build
	ctest --preset $(PRESET)

clean:
	rm -rf build
