// SPDX-License-Identifier: BSD-3-Clause
// A minimal QML runner for the install test: loads one file with nothing but the import path
// that QML_IMPORT_PATH and Qt give, and exits with the file's `exitCode` once it sets `done`.
#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtQml/qqmlcomponent.h>
#include <QtQml/qqmlengine.h>

#include <cstdio>
#include <memory>

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    if (argc < 2)
        return 2;
    QQmlEngine engine;
    QQmlComponent component(&engine, QUrl::fromLocalFile(QString::fromLocal8Bit(argv[1])));
    std::unique_ptr<QObject> root(component.create());
    if (!root) {
        std::fprintf(stderr, "%s\n", qPrintable(component.errorString()));
        return 1;
    }
    QObject::connect(root.get(), SIGNAL(doneChanged()), &app, SLOT(quit()));
    QTimer::singleShot(20000, &app, [] { std::fprintf(stderr, "timed out\n"); QCoreApplication::exit(3); });
    if (!root->property("done").toBool())
        app.exec();
    return root->property("done").toBool() ? root->property("exitCode").toInt() : 3;
}
