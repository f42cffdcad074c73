// Compiled as a file of the fetch layer (tests/layering_test): it names the serve layer, above
// fetch, so its include must not be found.
#include "serve/serve.h"
