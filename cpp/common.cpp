// common.cpp — anchors the error types' vtables in one translation unit.
#include "common.h"
