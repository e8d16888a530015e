/*
 * elementwise.c -- binarize, sign and the STE backward mask, elementwise.
 *
 * Memory-bound loops written so the compiler turns them into vector
 * compares and blends; the ternaries select instead of multiplying, so a
 * blocked gradient is exactly 0 even when grad is inf or NaN.
 */
#include "stefast.h"
#include "internal.h"

#define T double
#define SUF _d
#include "elementwise_impl.h"
#undef T
#undef SUF

#define T float
#define SUF _f
#include "elementwise_impl.h"
#undef T
#undef SUF
