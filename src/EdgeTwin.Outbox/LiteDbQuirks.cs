using System.Collections;
using System.Reflection;
using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>
/// Work-arounds for LiteDB 5.0.21 internals, kept in one place. Checked by the full-disk test.
/// </summary>
internal static class LiteDbQuirks
{
    private const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;

    /// <summary>
    /// When a commit fails half-way through writing pages (disk full, I/O error), LiteDB's rollback cannot discard
    /// the pages it already released, and the abandoned <c>TransactionService</c>'s finalizer later throws
    /// "discarded page must be writable" on the finalizer thread, which kills the process. We close the database
    /// after such a failure anyway, so the transaction objects are suppressed from finalization.
    /// </summary>
    /// <returns>How many transactions were suppressed (0 when LiteDB's internals differ from 5.0.21).</returns>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA1816", Justification = "Suppressing LiteDB's own objects is the point: their finalizer crashes the process.")]
    public static int ForgetBrokenTransactions(LiteDatabase database)
    {
        var engine = typeof(LiteDatabase).GetField("_engine", Private)?.GetValue(database);
        var monitor = engine?.GetType().GetField("_monitor", Private)?.GetValue(engine);
        if (monitor is null)
        {
            return 0;
        }

        var count = 0;
        if (monitor.GetType().GetField("_transactions", Private)?.GetValue(monitor) is IDictionary transactions)
        {
            lock (transactions)
            {
                foreach (var transaction in transactions.Values)
                {
                    GC.SuppressFinalize(transaction!);
                    count++;
                }
            }
        }

        var slot = monitor.GetType().GetField("_slot", Private)?.GetValue(monitor);
        if (slot?.GetType().GetProperty("Value")?.GetValue(slot) is { } current)
        {
            GC.SuppressFinalize(current);
            count++;
        }

        return count;
    }
}
