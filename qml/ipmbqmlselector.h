// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQMLSELECTOR_H
#define IPMBQMLSELECTOR_H

#include "ipmbqtqml_export.h"

#include <IpmbQt/ipmbselector.h>

#include <QtCore/qobject.h>
#include <QtQml/qqmlregistration.h>

// Selector.unicast("earth"), Selector.multicast("renderer && !gpu0", 500): selectors written the
// QML way, in the label-op text syntax. A syntax error gives an invalid selector that
// Endpoint.send() refuses with errorOccurred(InvalidArgumentError), never a silent no-op.
class IPMBQTQML_EXPORT IpmbQmlSelector : public QObject
{
    Q_OBJECT
    QML_NAMED_ELEMENT(Selector)
    QML_SINGLETON
    QML_EXTENDED_NAMESPACE(IpmbSelector) // Selector.Unicast, Selector.Multicast

public:
    explicit IpmbQmlSelector(QObject *parent = nullptr) : QObject(parent) { }

    Q_INVOKABLE IpmbSelector unicast(const QString &labelOp, int ttlMsecs = 0) const;
    Q_INVOKABLE IpmbSelector multicast(const QString &labelOp, int ttlMsecs = 0) const;
};

#endif // IPMBQMLSELECTOR_H
