// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQMLSHAREDIMAGE_H
#define IPMBQMLSHAREDIMAGE_H

#include "ipmbqmlendpoint.h"
#include "ipmbqtqml_export.h"

#include <IpmbQt/ipmbmemoryregion.h>
#include <IpmbQt/ipmbmessage.h>

#include <QtCore/qpointer.h>
#include <QtCore/qsize.h>
#include <QtCore/qvariantmap.h>
#include <QtGui/qimage.h>
#include <QtQml/qqmlregistration.h>
#include <QtQuick/qquickitem.h>

// Shows an image whose pixels live in the first memory region of a message, as an
// describe() payload says: the pixels are read from the shared memory by the
// texture upload, never copied through the socket or into the heap first.
class IPMBQTQML_EXPORT IpmbQmlSharedImage : public QQuickItem
{
    Q_OBJECT
    QML_NAMED_ELEMENT(SharedImage)
    Q_PROPERTY(IpmbQmlEndpoint *source READ source WRITE setSource NOTIFY sourceChanged)
    Q_PROPERTY(IpmbMessage message READ message WRITE setMessage NOTIFY messageChanged)
    Q_PROPERTY(QVariant payload READ payload NOTIFY messageChanged)
    Q_PROPERTY(QSize imageSize READ imageSize NOTIFY imageSizeChanged)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorStringChanged)

public:
    explicit IpmbQmlSharedImage(QQuickItem *parent = nullptr);
    ~IpmbQmlSharedImage() override;

    // Every message of `source` whose payload describes an image, taken in C++: a message that
    // reaches JavaScript holds its regions until the garbage collector runs (doc/qml.md).
    IpmbQmlEndpoint *source() const { return m_source; }
    void setSource(IpmbQmlEndpoint *source);
    IpmbMessage message() const { return m_message; }
    void setMessage(const IpmbMessage &message);
    QVariant payload() const { return m_message.payload(); }
    QSize imageSize() const { return m_image.size(); }
    QString errorString() const { return m_errorString; }

    // The payload that describes `image` (width, height, bytesPerLine, format), to send with the
    // region that holds its pixels; frame producers in C++ use it.
    static QVariantMap describe(const QImage &image);

Q_SIGNALS:
    void sourceChanged();
    void messageChanged();
    void imageSizeChanged();
    void errorStringChanged();

protected:
    QSGNode *updatePaintNode(QSGNode *oldNode, UpdatePaintNodeData *data) override;

private:
    void setErrorString(const QString &errorString);

    QPointer<IpmbQmlEndpoint> m_source;
    QMetaObject::Connection m_sourceConnection;
    IpmbMessage m_message;
    QImage m_image;        // wraps the region's memory; keeps a copy of the region alive
    bool m_imageChanged = false;
    QString m_errorString;
};

#endif // IPMBQMLSHAREDIMAGE_H
