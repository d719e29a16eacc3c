// main.cpp — posternctl, the administration command. See ctl.h.
#include "ctl.h"

#include <QCoreApplication>
#include <cstdio>

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QTextStream out(stdout);
    QTextStream err(stderr);
    return postern::ctl::runCtl(app.arguments(), out, err);
}
