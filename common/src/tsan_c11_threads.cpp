// Only in the ThreadSanitizer build (common/CMakeLists.txt). GCC 12's ThreadSanitizer intercepts
// the pthread calls but not C11's threads, mutexes and condition variables, which librdkafka uses:
// it then knows nothing of librdkafka's threads (and crashes in their first allocation), nor of
// its locks, so that every hand-over through librdkafka (a message produced on one thread, its
// delivery report on another) looks like a race. These definitions take the place of glibc's and
// do what glibc's do, through the pthread calls that ThreadSanitizer intercepts (glibc's thrd_t
// is a pthread_t, its mtx_t and cnd_t have the layout of pthread_mutex_t and pthread_cond_t).
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
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the thread's int result travels as pthread's void*
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

namespace {

pthread_mutex_t* native(mtx_t* mutex) {
    return reinterpret_cast<pthread_mutex_t*>(mutex);
}

pthread_cond_t* native(cnd_t* condition) {
    return reinterpret_cast<pthread_cond_t*>(condition);
}

int status(int error) {
    return error == 0 ? thrd_success : error == ETIMEDOUT ? thrd_timedout : thrd_error;
}

}  // namespace

extern "C" int mtx_init(mtx_t* mutex, int type) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    if ((type & mtx_recursive) != 0) {
        pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    }
    const int error = pthread_mutex_init(native(mutex), &attributes);
    pthread_mutexattr_destroy(&attributes);
    return status(error);
}

extern "C" int mtx_lock(mtx_t* mutex) {
    return status(pthread_mutex_lock(native(mutex)));
}

extern "C" int mtx_unlock(mtx_t* mutex) {
    return status(pthread_mutex_unlock(native(mutex)));
}

extern "C" void mtx_destroy(mtx_t* mutex) {
    pthread_mutex_destroy(native(mutex));
}

extern "C" int cnd_init(cnd_t* condition) {
    return status(pthread_cond_init(native(condition), nullptr));
}

extern "C" int cnd_signal(cnd_t* condition) {
    return status(pthread_cond_signal(native(condition)));
}

extern "C" int cnd_broadcast(cnd_t* condition) {
    return status(pthread_cond_broadcast(native(condition)));
}

extern "C" int cnd_wait(cnd_t* condition, mtx_t* mutex) {
    return status(pthread_cond_wait(native(condition), native(mutex)));
}

extern "C" int cnd_timedwait(cnd_t* condition, mtx_t* mutex, const struct timespec* until) {
    return status(pthread_cond_timedwait(native(condition), native(mutex), until));
}

extern "C" void cnd_destroy(cnd_t* condition) {
    pthread_cond_destroy(native(condition));
}
