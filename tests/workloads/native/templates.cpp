// A tiny C++ library for the native-frames tests: `tracer_test_templates(n)`
// (C linkage, called with ctypes) burns CPU in a function template of a
// namespace, instantiated for double, whose symbol is C++-mangled
// (`_ZN11tracer_test4spinIdEEmm` or so): the tracer names it demangled,
// `tracer_test::spin<double>`.
#include <cstddef>

namespace tracer_test {

template <typename T>
__attribute__((noinline)) unsigned long spin(unsigned long n)
{
    volatile T acc = 0;
    for (unsigned long i = 0; i < n; i++)
        acc = acc + static_cast<T>(i % 7);
    return static_cast<unsigned long>(acc);
}

template unsigned long spin<double>(unsigned long);

} // namespace tracer_test

extern "C" __attribute__((visibility("default"))) unsigned long
tracer_test_templates(unsigned long n)
{
    unsigned long total = 0;
    for (int round = 0; round < 4; round++)
        total += tracer_test::spin<double>(n);
    return total;
}
