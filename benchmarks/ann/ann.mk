# ann.mk -- builds the ANN benchmark drivers into build/bench-ann/.
# Read together with the top Makefile (it uses BASE_CFLAGS and LIBS):
#     make -f Makefile -f benchmarks/ann/ann.mk ann-anchors ann-knytt
# benchmarks/ann/run does this.  hnswlib and FAISS are benchmark-only
# dependencies: only these executables link them, never libknytt.

ANN_DIR := benchmarks/ann
ANN_OUT := build/bench-ann
ANN_CFLAGS = $(BASE_CFLAGS) -I$(ANN_DIR)
CXX ?= g++
# hnswlib chooses its SIMD distance at compile time: give the anchor the
# same -march=native its own Python build uses.
ANN_CXXFLAGS := -std=c++17 -O3 -g -march=native -Wall -Wextra -I$(ANN_DIR) \
	-Iinclude -pthread
FAISS_LIBS := -lfaiss -fopenmp -lblas -llapack

$(ANN_OUT)/%.o: $(ANN_DIR)/%.c $(ANN_DIR)/annbench.h include/knytt.h
	@mkdir -p $(ANN_OUT)
	$(CC) $(ANN_CFLAGS) $(CFLAGS) -c $< -o $@

$(ANN_OUT)/adapter_hnswlib.o: $(ANN_DIR)/adapter_hnswlib.cpp \
		$(ANN_DIR)/annbench.h
	@mkdir -p $(ANN_OUT)
	$(CXX) $(ANN_CXXFLAGS) -c $< -o $@

$(ANN_OUT)/adapter_faiss.o: $(ANN_DIR)/adapter_faiss.cpp \
		$(ANN_DIR)/annbench.h
	@mkdir -p $(ANN_OUT)
	$(CXX) $(filter-out -march=native -O3,$(ANN_CXXFLAGS)) -O2 -fopenmp \
		-c $< -o $@

ANN_COMMON := $(ANN_OUT)/ann_main.o $(ANN_OUT)/annbench.o

$(ANN_OUT)/ann_hnswlib: $(ANN_COMMON) $(ANN_OUT)/adapter_hnswlib.o
	$(CXX) -pthread -o $@ $^ -lm

$(ANN_OUT)/ann_faiss: $(ANN_COMMON) $(ANN_OUT)/adapter_faiss.o
	$(CXX) -pthread -o $@ $^ $(FAISS_LIBS) -lm

$(ANN_OUT)/ann_knytt: $(ANN_COMMON) $(ANN_OUT)/adapter_knytt.o build/libknytt.a
	$(CC) $(BASE_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(ANN_OUT)/ann_prep: $(ANN_OUT)/ann_prep.o $(ANN_OUT)/annbench.o \
		build/libknytt.a
	$(CC) $(BASE_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# exact search against the sgemm calls it is built on (no anchor library)
$(ANN_OUT)/exact_bench: $(ANN_OUT)/exact_bench.o build/libknytt.a
	$(CC) $(BASE_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# the recall codes of 8 bits per dimension allow (no anchor library)
$(ANN_OUT)/quant_ceiling: $(ANN_OUT)/quant_ceiling.o $(ANN_OUT)/annbench.o \
		build/libknytt.a
	$(CC) $(BASE_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# knytt and one anchor in one process, their queries interleaved
# (ann_pair.c): the same adapter objects, their entry points renamed
$(ANN_OUT)/pair_knytt.o: $(ANN_OUT)/adapter_knytt.o
	objcopy --redefine-sym ann_adapter_get=ann_adapter_knytt $< $@
$(ANN_OUT)/pair_%.o: $(ANN_OUT)/adapter_%.o
	objcopy --redefine-sym ann_adapter_get=ann_adapter_anchor $< $@

$(ANN_OUT)/ann_pair_hnswlib: $(ANN_OUT)/ann_pair.o $(ANN_OUT)/annbench.o \
		$(ANN_OUT)/pair_knytt.o $(ANN_OUT)/pair_hnswlib.o \
		build/libknytt.a
	$(CXX) -pthread -o $@ $^ $(LIBS)

$(ANN_OUT)/ann_pair_faiss: $(ANN_OUT)/ann_pair.o $(ANN_OUT)/annbench.o \
		$(ANN_OUT)/pair_knytt.o $(ANN_OUT)/pair_faiss.o \
		build/libknytt.a
	$(CXX) -pthread -o $@ $^ $(LIBS) $(FAISS_LIBS)

ann-pair: $(ANN_OUT)/ann_pair_hnswlib $(ANN_OUT)/ann_pair_faiss

ann-anchors: $(ANN_OUT)/ann_prep $(ANN_OUT)/ann_hnswlib $(ANN_OUT)/ann_faiss
ann-knytt: $(ANN_OUT)/ann_knytt $(ANN_OUT)/exact_bench $(ANN_OUT)/quant_ceiling

.PHONY: ann-anchors ann-knytt ann-pair
