// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBMEMORYREGISTRY_H
#define IPMBMEMORYREGISTRY_H

#include "ipmbqtglobal.h"
#include "ipmbmemoryregion.h"

#include <QtCore/qobject.h>

#include <memory>

class IpmbMemoryRegistryPrivate;

class IPMBQT_EXPORT IpmbMemoryRegistry : public QObject
{
    Q_OBJECT
    Q_PROPERTY(int expiryInterval READ expiryInterval WRITE setExpiryInterval NOTIFY expiryIntervalChanged)
    // errorOccurred() is also emitted, with NoError, when clearError() resets a set error.
    Q_PROPERTY(Error error READ error NOTIFY errorOccurred)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorOccurred)

public:
    enum Error {
        NoError,
        ResourceError,
        OutOfRangeError,
        UnknownError
    };
    Q_ENUM(Error)

    explicit IpmbMemoryRegistry(QObject *parent = nullptr);
    ~IpmbMemoryRegistry() override;

    IpmbMemoryRegion alloc(qsizetype minSize, const QString &tag = {});
    void maintain();

    int count() const;
    int freeCount() const;

    int expiryInterval() const;
    void setExpiryInterval(int msecs);

    Error error() const;
    QString errorString() const;
    void clearError();

Q_SIGNALS:
    void regionFreed(const IpmbMemoryRegion &region, const QString &tag);
    void expiryIntervalChanged(int msecs);
    void errorOccurred(IpmbMemoryRegistry::Error error);

protected:
    void connectNotify(const QMetaMethod &signal) override;
    void disconnectNotify(const QMetaMethod &signal) override;

private:
    Q_DISABLE_COPY_MOVE(IpmbMemoryRegistry)
    Q_DECLARE_PRIVATE(IpmbMemoryRegistry)
    std::unique_ptr<IpmbMemoryRegistryPrivate> d_ptr;
};

#endif // IPMBMEMORYREGISTRY_H
