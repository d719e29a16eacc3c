// placeholder
#include "ctl.h"
namespace postern::ctl { void addImportCommands(QList<Command>&) {} }
