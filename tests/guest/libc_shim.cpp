// The few libc symbols GCC may emit calls to even in freestanding code
// (struct copies, zeroing loops): memcpy, memmove, memset, memcmp
// (GCC manual, "Standards": freestanding code must provide them).
// rep movsb/stosb run natively at CPL3, where all probe code runs.
#include <cstddef>

extern "C" {

void* memcpy(void* dst, const void* src, size_t n) {
    void* ret = dst;
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return ret;
}

void* memmove(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    if (d <= s || d >= s + n) {
        return memcpy(dst, src, n);
    }
    while (n > 0) {  // overlapping, destination above source: copy backwards
        --n;
        d[n] = s[n];
    }
    return dst;
}

void* memset(void* dst, int c, size_t n) {
    void* ret = dst;
    asm volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
    return ret;
}

int memcmp(const void* a, const void* b, size_t n) {
    const auto* x = static_cast<const unsigned char*>(a);
    const auto* y = static_cast<const unsigned char*>(b);
    for (size_t i = 0; i < n; ++i) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

}  // extern "C"
