# --- undo: reverses a change log of this script, newest change first ----------------------------

function Test-SaUndoRow {
    # A log is a file anyone may have edited: -Undo reverses only what this script itself
    # changes, on objects named by a GUID. Returns the reason to refuse the row, or ''.
    param([object]$Row)
    $guid = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    if ([string]$Row.TargetId -notmatch $guid) { return ('the target {0} is not an object id' -f $Row.TargetId) }
    if ($Row.Undo -eq 'role-schedule') {
        # only a script with the roles detour changes roles (and connects for their undo)
        if (-not $script:RoleChanges) { return ('this script does not undo {0}' -f $Row.Undo) }
        if ([string]$Row.Property -notmatch $guid) { return ('the role {0} is not a role definition id' -f $Row.Property) }
        return ''
    }
    $properties = @{
        'immutable-id'    = @('onPremisesImmutableId')
        'upn'             = @('userPrincipalName')
        'restore'         = @('deletedItem')
        'account-enabled' = @('accountEnabled')
        'ad-attribute'    = $script:AdAttributes
    }
    if (-not $properties.ContainsKey([string]$Row.Undo)) { return ('this script does not undo {0}' -f $Row.Undo) }
    if ($properties[[string]$Row.Undo] -cnotcontains [string]$Row.Property) { return ('this script does not change {0} for {1}' -f $Row.Property, $Row.Undo) }
    return ''
}

function Undo-SaRow {
    # Every reversal first checks that the directory still shows the logged new value.
    param([object]$Row)
    $refused = Test-SaUndoRow -Row $Row
    if ($refused) { return $refused }
    switch ($Row.Undo) {
        'immutable-id' {
            $user = Get-SaUser -UserId $Row.TargetId
            if ((-not $user) -or ($user.OnPremisesSyncEnabled -eq $true)) { return 'the user is gone or synced now: its anchor cannot be changed from the cloud' }
            if ([string]$user.OnPremisesImmutableId -cne $Row.After) { return 'the immutableId is not the logged new value (the change did not happen or changed again)' }
            $before = [string]$Row.Before
            if ((-not $before) -and (Test-SaFederatedUpn -Upn $user.UserPrincipalName)) { return ('{0} is in a federated domain: its immutableId is not cleared' -f $user.UserPrincipalName) }
            if (-not (Confirm-SaChange -Target $Row.TargetId -Operation ('onPremisesImmutableId {0} -> {1}' -f $Row.After, $before))) { return 'declined' }
            Invoke-SaWithUpnDetour -Fingerprint $Row.Fingerprint -Code $Row.Code -User $user -Change {
                Set-SaImmutableId -UserId $user.Id -Value $before
            }
            if (-not (Test-SaImmutableId -UserId $Row.TargetId -Expected $before)) { return 'the read-back does not show the old value yet' }
        }
        'upn' {
            $user = Get-SaUser -UserId $Row.TargetId
            if ((-not $user) -or ($user.UserPrincipalName -ne $Row.After)) { return 'the UPN is not the temporary one (it was moved back)' }
            if (-not (Confirm-SaChange -Target $Row.TargetId -Operation ('userPrincipalName {0} -> {1}' -f $Row.After, $Row.Before))) { return 'declined' }
            Update-MgUser -UserId $Row.TargetId -UserPrincipalName $Row.Before -Confirm:$false
        }
        'restore' {
            $user = Get-SaUser -UserId $Row.TargetId
            if (-not $user) { return 'the restored user is not active' }
            if ($user.OnPremisesSyncEnabled -eq $true) { return 'the restored user is synced now: Graph does not delete a synced user; take its AD object out of sync scope instead' }
            if (-not (Confirm-SaChange -Target $Row.TargetId -Operation 'Remove-MgUser (back to deleted items)')) { return 'declined' }
            Remove-MgUser -UserId $Row.TargetId -Confirm:$false
        }
        'account-enabled' {
            $user = Get-SaUser -UserId $Row.TargetId
            if ((-not $user) -or ($user.AccountEnabled -ne $false)) { return 'sign-in is not blocked (the change did not happen or was undone)' }
            if (-not (Confirm-SaChange -Target $Row.TargetId -Operation 'allow sign-in again (accountEnabled = true)')) { return 'declined' }
            Update-MgUser -UserId $Row.TargetId -AccountEnabled:$true -Confirm:$false
        }
        'role-schedule' {
            $schedule = $Row.Before | ConvertFrom-Json
            if ([string]$schedule.RoleDefinitionId -ne [string]$Row.Property) { return 'the logged schedule is not for the logged role' }
            $present = @(Get-SaRoleSchedules -UserId $Row.TargetId | Where-Object { ($_.Kind -eq $schedule.Kind) -and ($_.RoleDefinitionId -eq $schedule.RoleDefinitionId) -and ($_.DirectoryScopeId -eq $schedule.DirectoryScopeId) })
            if ($present.Count -gt 0) { return ('the role {0} is present' -f $schedule.Kind) }
            if (-not (Confirm-SaChange -Target $Row.TargetId -Operation ('restore role {0} {1} with its schedule' -f $schedule.Kind, $schedule.RoleName))) { return 'declined' }
            return (Restore-SaRoleSchedule -UserId $Row.TargetId -Schedule $schedule)
        }
        'ad-attribute' {
            Import-Module ActiveDirectory
            $user = Get-ADUser -Identity $Row.TargetId -Properties @($Row.Property)
            if ($Row.Property -eq 'proxyAddresses') {
                if (-not (@($user.proxyAddresses) -ccontains $Row.After)) { return 'the new proxy address is no longer on the user' }
                if (-not (Confirm-SaChange -Target $Row.TargetId -Operation ('proxyAddresses {0} -> {1}' -f $Row.After, $Row.Before))) { return 'declined' }
                Set-ADUser -Identity $Row.TargetId -Remove @{ proxyAddresses = $Row.After } -Add @{ proxyAddresses = $Row.Before } -Confirm:$false
                return ''
            }
            if ([string]$user.($Row.Property) -cne $Row.After) { return 'the attribute is not the logged new value' }
            if (-not (Confirm-SaChange -Target $Row.TargetId -Operation ('{0}: {1} -> {2}' -f $Row.Property, $Row.After, $Row.Before))) { return 'declined' }
            if ($Row.Before) {
                $replace = @{}
                $replace[$Row.Property] = $Row.Before
                Set-ADUser -Identity $Row.TargetId -Replace $replace -Confirm:$false
            }
            else {
                Set-ADUser -Identity $Row.TargetId -Clear $Row.Property -Confirm:$false
            }
        }
        default {
            return ('no undo for {0}' -f $Row.Undo)
        }
    }
    return ''
}

function Get-SaUndoRows {
    # The last logged state of every change, newest first: a change logged as started (the
    # script stopped during the write), done, unverified (read-back timed out) or failed (the
    # write raised an error, so its effect is unknown) is reversed when the directory shows
    # its new value. Rows written by an undo are never undone again.
    param([string]$Path)
    $last = [ordered]@{}
    # -Encoding UTF8 reads the log with or without a BOM (PowerShell 7 writes none, and 5.1
    # would read a BOM-less file as the ANSI code page and write mangled names back).
    foreach ($row in @(Import-Csv -LiteralPath $Path -Encoding UTF8)) {
        foreach ($name in @('RunId', 'Fingerprint', 'Code', 'Action', 'TargetId', 'Property', 'Before', 'After', 'Note')) {
            $row.$name = ConvertFrom-SaCsvCell $row.$name
        }
        if ($row.Operation) { $last[$row.Operation] = $row }
    }
    $rows = @($last.Values | Where-Object { ($_.Undo -ne 'none') -and (@('started', 'done', 'unverified', 'failed') -contains $_.Result) })
    [array]::Reverse($rows)
    return $rows
}

function Invoke-SaUndo {
    param([string]$Path)
    $rows = @(Get-SaUndoRows -Path $Path)
    Write-Host ('{0} change(s) in {1} can be reversed' -f $rows.Count, $Path)
    foreach ($row in $rows) {
        $what = 'undo {0} on {1} ({2}): {3} {4} -> {5}' -f $row.Action, $row.TargetId, $row.Result, $row.Property, $row.After, $row.Before
        if (-not $script:Apply) { Write-SaPlan $row.Fingerprint $row.Code $what; continue }
        try {
            $reason = Undo-SaRow -Row $row
            if ($reason) {
                Skip-SaStep $row.Fingerprint $row.Code ('undo-' + $row.Action) $row.TargetId $reason
            }
            else {
                Write-SaLog -Fingerprint $row.Fingerprint -Code $row.Code -Action ('undo-' + $row.Action) -TargetId $row.TargetId -Property $row.Property -Before $row.After -After $row.Before
                Write-SaDone $row.Fingerprint $row.Code $what
            }
        }
        catch { Write-SaFailure $row.Fingerprint $row.Code ('undo-' + $row.Action) $row.TargetId $_ }
    }
}

function Complete-SaRun {
    Write-Host ''
    if (-not $script:Apply) {
        Write-Host 'Nothing was changed (no -Apply). Review the plan, then run again with -Apply (add -WhatIf for a live check first).'
        Write-Host 'After the changes: Start-ADSyncSyncCycle -PolicyType Delta on the Entra Connect server.'
        return
    }
    Write-Host ('{0} change(s), {1} unverified, {2} skipped, {3} failed; log: {4}' -f $script:Changed, $script:Unverified, $script:Skipped, $script:Failed, $script:LogPath)
    if (($script:Changed + $script:Unverified) -eq 0) { return }
    if (Get-Command -Name 'Start-ADSyncSyncCycle' -ErrorAction SilentlyContinue) {
        if (Confirm-SaChange -Target 'Entra Connect' -Operation 'Start-ADSyncSyncCycle -PolicyType Delta') {
            Start-ADSyncSyncCycle -PolicyType Delta | Out-Null
            Write-Host 'Delta sync cycle started.'
        }
    }
    else {
        Write-Host 'Next: run Start-ADSyncSyncCycle -PolicyType Delta on the Entra Connect server (ADSync module), or wait for the next scheduled cycle.'
    }
}
