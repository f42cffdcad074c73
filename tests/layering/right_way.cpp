// Compiled as a file of the fetch layer (tests/layering_test): util is below fetch, so this
// builds; the wrong-way probe beside it fails for its include alone.
#include "fetch/fetch.h"
#include "util/process.h"
