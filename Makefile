# The two commands of a fresh machine: `make up` and `make test`.
PRESET ?= release
BIN := build/$(PRESET)/bin

.PHONY: deps build up test lint clean

deps:
	scripts/install-deps

build: deps
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET)

up: build
	$(BIN)/calcmesh up

test: build
	ctest --preset $(PRESET)

# clang-format and clang-tidy on every C++ file; scripts/lint --fix applies their fixes.
lint: deps
	cmake --preset $(PRESET)
	scripts/lint --preset $(PRESET)

clean:
	rm -rf build
