// Only in the ThreadSanitizer build (common/CMakeLists.txt). GCC 12's ThreadSanitizer intercepts
// pthread_create and pthread_join but not C11's thrd_create and thrd_join, with which librdkafka
// starts and joins its threads: it then knows nothing of those threads and crashes in their first
// allocation. These definitions take the place of glibc's, so that librdkafka's threads go
// through the calls it intercepts (glibc's thrd_t is a pthread_t).
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>

namespace {

struct Start {
    thrd_start_t function;
    void* argument;
};

void* run(void* start) {
    const Start copy = *static_cast<Start*>(start);
    delete static_cast<Start*>(start);
    return reinterpret_cast<void*>(static_cast<std::intptr_t>(copy.function(copy.argument)));
}

}  // namespace

extern "C" int thrd_create(thrd_t* thread, thrd_start_t function, void* argument) {
    auto* start = new Start{function, argument};
    const int error = pthread_create(thread, nullptr, run, start);
    if (error != 0) {
        delete start;
        return error == EAGAIN ? thrd_nomem : thrd_error;
    }
    return thrd_success;
}

extern "C" int thrd_join(thrd_t thread, int* result) {
    void* value = nullptr;
    if (pthread_join(thread, &value) != 0) {
        return thrd_error;
    }
    if (result != nullptr) {
        *result = static_cast<int>(reinterpret_cast<std::intptr_t>(value));
    }
    return thrd_success;
}
