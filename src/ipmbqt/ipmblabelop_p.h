// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBLABELOP_P_H
#define IPMBLABELOP_P_H

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

// The nodes of an IpmbLabelOp, shared by ipmblabelop.cpp (the class, matching, the stream
// operators) and ipmblabeloptext.cpp (the text form: toString() and fromString()).

#include "ipmblabelop.h"

#include <QtCore/qhashfunctions.h>
#include <QtCore/qshareddata.h>
#include <QtCore/qstring.h>
#include <QtCore/qvarlengtharray.h>

#include <algorithm>
#include <limits>
#include <utility>

class IpmbLabelOpData : public QSharedData
{
public:
    using Kind = IpmbLabelOp::Kind;
    using Ptr = QExplicitlySharedDataPointer<IpmbLabelOpData>;

    explicit IpmbLabelOpData(Kind k)
        : kind(k)
    {
        hash = qHash(int(kind));
    }

    explicit IpmbLabelOpData(const QString &leafName)
        : kind(Kind::Leaf), name(leafName)
    {
        hash = qHashMulti(0, int(kind), name);
    }

    IpmbLabelOpData(Kind k, Ptr first, Ptr second = Ptr())
        : kind(k)
    {
        operands[0] = std::move(first);
        operands[1] = std::move(second);
        depth = saturatingAdd(operands[0]->depth, 1);
        nodeCount = saturatingAdd(operands[0]->nodeCount, 1);
        if (operands[1]) {
            depth = std::max(depth, saturatingAdd(operands[1]->depth, 1));
            nodeCount = saturatingAdd(nodeCount, operands[1]->nodeCount);
            hash = qHashMulti(0, int(kind), operands[0]->hash, operands[1]->hash);
        } else {
            hash = qHashMulti(0, int(kind), operands[0]->hash);
        }
    }

    // Nodes are never modified after construction, so QSharedDataPointer must never clone one.
    IpmbLabelOpData(const IpmbLabelOpData &) = delete;
    IpmbLabelOpData &operator=(const IpmbLabelOpData &) = delete;

    ~IpmbLabelOpData()
    {
        // An op built with operators can be arbitrarily deep. Releasing it recursively could
        // overflow the stack, so the children this node owns alone are unlinked into a list
        // first and released one by one.
        QVarLengthArray<Ptr, 32> pending;
        for (Ptr &child : operands) {
            if (child)
                pending.append(std::move(child));
        }
        while (!pending.isEmpty()) {
            Ptr node = std::move(pending.last());
            pending.removeLast();
            // ref == 1 means `node` is the only reference left, so nobody else can see it.
            if (node->ref.loadRelaxed() == 1) {
                for (Ptr &child : node->operands) {
                    if (child)
                        pending.append(std::move(child));
                }
            }
        }
    }

    static quint32 saturatingAdd(quint32 a, quint32 b)
    {
        const quint64 sum = quint64(a) + b;
        return sum > std::numeric_limits<quint32>::max() ? std::numeric_limits<quint32>::max()
                                                          : quint32(sum);
    }

    const IpmbLabelOpData *operand(int i) const { return operands[i].constData(); }

    Kind kind;
    quint32 depth = 1;     // nodes on the longest path from here to a leaf (saturating)
    quint32 nodeCount = 1; // nodes of the tree with shared subtrees counted each time (saturating)
    size_t hash = 0;       // structural hash, seed 0; qHash() reseeds it
    QString name;          // Leaf only
    Ptr operands[2];       // Not: [0]; And/Or: [0] and [1]
};

namespace IpmbLabelOpDetail {

// QVarLengthArray has no takeLast() in Qt 6.4.
template <typename T, qsizetype Prealloc>
T takeLast(QVarLengthArray<T, Prealloc> &stack)
{
    T value = std::move(stack.last());
    stack.removeLast();
    return value;
}

} // namespace IpmbLabelOpDetail

#endif // IPMBLABELOP_P_H
