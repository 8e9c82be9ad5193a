# Two commands matter: `make demo` and `make test`. Everything else is a step of those.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build demo test test-statistical bench asan fuzz clean format

FUZZ_SECONDS ?= 60

all: build

setup:
	@scripts/setup

$(BUILD)/CMakeCache.txt: | setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: setup $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/bin/cleanroom demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE slow

# Every case of Google's DP test files against the mechanisms (minutes; the
# tests are labelled slow too, so `make test` runs only their smoke subset).
test-statistical: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L statistical

bench: build
	bench/run_all.sh $(BUILD)

asan: setup
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCLEANROOM_SANITIZE=ON -DCLEANROOM_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS) -LE slow

# Fuzzes the SQL checker for FUZZ_SECONDS under sanitizers (see fuzz/README.md).
fuzz: setup
	scripts/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) build-asan

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
