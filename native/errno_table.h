// errno <-> Node-style code names ("ECONNREFUSED"), one table for the whole
// addon. The binding uses it to build errors with Node's system-error shape.
#ifndef AIONODE_ERRNO_TABLE_H_
#define AIONODE_ERRNO_TABLE_H_

namespace aionode {

// Code name for a positive errno value, or "UNKNOWN" when not in the table.
const char* ErrnoName(int err);

// errno for a code name, or 0 when unknown.
int ErrnoFromName(const char* name);

// Human-readable text for a positive errno (thread-safe strerror).
const char* ErrnoMessage(int err);

}  // namespace aionode

#endif  // AIONODE_ERRNO_TABLE_H_
