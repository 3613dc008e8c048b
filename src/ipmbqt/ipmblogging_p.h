// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBLOGGING_P_H
#define IPMBLOGGING_P_H

//
//  W A R N I N G
//  -------------
//
// This file is not part of the IpmbQt API. It exists purely as an
// implementation detail. This header file may change from version to
// version without notice, or even be removed.
//
// We mean it.
//

#include <QtCore/qloggingcategory.h>

Q_DECLARE_LOGGING_CATEGORY(lcIpmbEndpoint)
Q_DECLARE_LOGGING_CATEGORY(lcIpmbController)
Q_DECLARE_LOGGING_CATEGORY(lcIpmbTransport)

#endif // IPMBLOGGING_P_H
