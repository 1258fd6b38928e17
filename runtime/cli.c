/* placeholder: being written */
#include "config.h"
typedef int kv_placeholder_cli;
