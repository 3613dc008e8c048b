// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbqmlendpoint.h"

#include <QtQml/qjsvalue.h>

IpmbQmlEndpoint::IpmbQmlEndpoint(QObject *parent)
    : QObject(parent), m_endpoint(new IpmbEndpoint(this))
{
    connect(m_endpoint, &IpmbEndpoint::identifierChanged, this, &IpmbQmlEndpoint::identifierChanged);
    connect(m_endpoint, &IpmbEndpoint::labelChanged, this, &IpmbQmlEndpoint::labelChanged);
    connect(m_endpoint, &IpmbEndpoint::tokenChanged, this, &IpmbQmlEndpoint::tokenChanged);
    connect(m_endpoint, &IpmbEndpoint::joinTimeoutChanged, this, &IpmbQmlEndpoint::joinTimeoutChanged);
    connect(m_endpoint, &IpmbEndpoint::stateChanged, this, &IpmbQmlEndpoint::stateChanged);
    connect(m_endpoint, &IpmbEndpoint::controllerChanged, this, &IpmbQmlEndpoint::controllerChanged);
    connect(m_endpoint, &IpmbEndpoint::joined, this, &IpmbQmlEndpoint::joined);
    connect(m_endpoint, &IpmbEndpoint::errorOccurred, this, &IpmbQmlEndpoint::errorOccurred);
    connect(m_endpoint, &IpmbEndpoint::messageReceived, this, &IpmbQmlEndpoint::messageReceived);
    connect(m_endpoint, &IpmbEndpoint::messagesDropped, this, &IpmbQmlEndpoint::messagesDropped);
}

IpmbQmlEndpoint::~IpmbQmlEndpoint() = default;

void IpmbQmlEndpoint::setActive(bool active)
{
    if (m_active == active)
        return;
    m_active = active;
    Q_EMIT activeChanged();
    update();
}

void IpmbQmlEndpoint::componentComplete()
{
    m_complete = true;
    update();
}

// Joins once the component is complete (all bindings set) and active; leaves when made inactive.
void IpmbQmlEndpoint::update()
{
    if (!m_complete)
        return;
    if (m_active && m_endpoint->state() == IpmbEndpoint::UnjoinedState)
        m_endpoint->join();
    else if (!m_active && m_endpoint->state() != IpmbEndpoint::UnjoinedState)
        m_endpoint->leave();
}

bool IpmbQmlEndpoint::send(const IpmbSelector &selector, const QVariant &payload)
{
    // A JavaScript object or array may reach us as a QJSValue; the bus carries plain QVariants.
    if (payload.metaType() == QMetaType::fromType<QJSValue>())
        return m_endpoint->send(selector, payload.value<QJSValue>().toVariant());
    return m_endpoint->send(selector, payload);
}
